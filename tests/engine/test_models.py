"""Model architecture, key layout and MSST config handling."""

from __future__ import annotations

import re
import textwrap

import pytest
import torch

from runtime_entry.errors import ModelConfigError
from runtime_entry.models import build_model, resolve_spec
from runtime_entry.models.spec import DEFAULT_FREQS_PER_BANDS, PRESETS, load_yaml, spec_from_config


def community_bs_roformer_keys(
    *, depth, time_depth, freq_depth, n_bands, n_stems, mask_depth, linear_depth=0
) -> set[str]:
    """The state-dict keys of an MSST BS-RoFormer checkpoint, written out from the layout."""
    keys = set()

    def transformer(prefix, n, rotary):
        for j in range(n):
            a, f = f"{prefix}.layers.{j}.0", f"{prefix}.layers.{j}.1"
            if rotary:
                keys.update(
                    {
                        f"{a}.rotary_embed.freqs",
                        f"{a}.to_qkv.weight",
                        f"{a}.to_gates.weight",
                        f"{a}.to_gates.bias",
                        f"{a}.to_out.0.weight",
                    }
                )
            else:
                keys.update({f"{a}.to_qkv.0.weight", f"{a}.temperature", f"{a}.to_out.1.weight"})
            keys.add(f"{a}.norm.gamma")
            keys.update(
                {
                    f"{f}.net.0.gamma",
                    f"{f}.net.1.weight",
                    f"{f}.net.1.bias",
                    f"{f}.net.4.weight",
                    f"{f}.net.4.bias",
                }
            )

    for i in range(depth):
        k = 0
        if linear_depth:
            transformer(f"layers.{i}.0", linear_depth, rotary=False)
            k = 1
        transformer(f"layers.{i}.{k}", time_depth, rotary=True)
        transformer(f"layers.{i}.{k + 1}", freq_depth, rotary=True)
    keys.add("final_norm.gamma")
    for b in range(n_bands):
        keys.update(
            {
                f"band_split.to_features.{b}.0.gamma",
                f"band_split.to_features.{b}.1.weight",
                f"band_split.to_features.{b}.1.bias",
            }
        )
        for s in range(n_stems):
            for m in range(mask_depth):
                keys.update(
                    {
                        f"mask_estimators.{s}.to_freqs.{b}.0.{2 * m}.weight",
                        f"mask_estimators.{s}.to_freqs.{b}.0.{2 * m}.bias",
                    }
                )
    return keys


def test_reference_4stem_preset_has_the_musdb_architecture_and_community_keys():
    spec = resolve_spec("bs_roformer_4stem")
    assert spec.instruments == ("drums", "bass", "other", "vocals")
    assert (spec.chunk_size, spec.sample_rate, spec.num_overlap) == (485100, 44100, 2)
    p = spec.params
    assert (
        p["dim"],
        p["depth"],
        p["heads"],
        p["dim_head"],
        p["mlp_expansion_factor"],
        p["mask_estimator_depth"],
    ) == (384, 8, 8, 64, 2, 2)
    assert (p["stft_n_fft"], p["stft_hop_length"]) == (2048, 441)
    assert len(DEFAULT_FREQS_PER_BANDS) == 62 and sum(DEFAULT_FREQS_PER_BANDS) == 1025
    with torch.device("meta"):  # the full model's structure, without allocating its weights
        model = build_model(spec)
    keys = set(model.state_dict())
    assert keys == community_bs_roformer_keys(
        depth=8, time_depth=1, freq_depth=1, n_bands=62, n_stems=4, mask_depth=2
    )
    hidden = model.state_dict()["mask_estimators.0.to_freqs.0.0.0.weight"].shape
    assert tuple(hidden) == (384 * 2, 384)


def test_tiny_preset_separates_a_chunk_into_four_stereo_stems(tiny):
    spec, model = tiny
    with torch.inference_mode():
        out = model(torch.randn(2, 2, spec.chunk_size))
    assert out.shape == (2, 4, 2, spec.chunk_size)
    assert torch.isfinite(out).all()


def test_random_weights_are_seeded_and_reproducible():
    spec = resolve_spec("tiny")
    a, b = build_model(spec).state_dict(), build_model(spec).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_linear_transformer_and_skip_connection_change_layout_and_output():
    base = PRESETS["tiny"]
    cfg = {
        **base,
        "model": {**base["model"], "linear_transformer_depth": 1, "depth": 2, "skip_connection": True},
    }
    spec = spec_from_config(cfg, name="t", source="test")
    model = build_model(spec)
    keys = set(model.state_dict())
    assert keys == community_bs_roformer_keys(
        depth=2, time_depth=1, freq_depth=1, n_bands=17, n_stems=4, mask_depth=2, linear_depth=1
    )
    x = torch.randn(1, 2, spec.chunk_size)
    no_skip = build_model(
        spec_from_config(
            {**cfg, "model": {**cfg["model"], "skip_connection": False}}, name="t", source="test"
        )
    )
    with torch.inference_mode():
        assert not torch.allclose(model(x), no_skip(x))


def _plain_transformer(transformer, x: torch.Tensor) -> torch.Tensor:
    """The community formulation, op for op: x (batch, seq, dim) -> same shape."""
    for attn, ff in transformer.layers:
        b, n, _ = x.shape
        normed = attn.norm(x)
        q, k, v = (t.view(b, n, attn.heads, -1).transpose(1, 2) for t in attn.to_qkv(normed).chunk(3, dim=-1))
        angles = torch.arange(n, dtype=torch.float32)[:, None] * attn.rotary_embed.freqs[None, :]
        cos, sin = angles.cos(), angles.sin()

        def rotate(t: torch.Tensor, cos: torch.Tensor = cos, sin: torch.Tensor = sin) -> torch.Tensor:
            x1, x2 = t[..., 0::2], t[..., 1::2]
            return torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)

        scores = rotate(q) @ rotate(k).transpose(-1, -2) / q.shape[-1] ** 0.5
        out = scores.softmax(dim=-1) @ v
        out = out * attn.to_gates(normed).sigmoid().transpose(1, 2).unsqueeze(-1)
        x = x + attn.to_out[0](out.transpose(1, 2).reshape(b, n, -1))
        hidden = torch.nn.functional.gelu(ff.net[1](ff.net[0](x)))
        x = x + ff.net[4](hidden)
    return transformer.norm(x)


@pytest.mark.parametrize("precision", ["highest", "high"])
def test_axial_layers_equal_the_plain_community_formulation(precision):
    # run_layers works in place, on strided views and a reused workspace; this pins it to
    # the textbook math (batch of 2, skip connections, non-trivial norm gains and biases).
    from runtime_entry.models.axial import run_layers

    base = PRESETS["tiny"]
    spec = spec_from_config(
        {**base, "model": {**base["model"], "depth": 2, "skip_connection": True}}, name="t", source="test"
    )
    model = build_model(spec)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.endswith("freqs"):
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
    x = torch.randn(2, 9, 17, 32, generator=gen)  # (batch, frames, bands, dim)
    expected, store = x.clone(), []
    for time_t, freq_t in model.layers:
        for prev in store:
            expected = expected + prev
        b, t, f, d = expected.shape
        expected = (
            _plain_transformer(time_t, expected.transpose(1, 2).reshape(b * f, t, d))
            .view(b, f, t, d)
            .transpose(1, 2)
        )
        expected = _plain_transformer(freq_t, expected.reshape(b * t, f, d)).view(b, t, f, d)
        store.append(expected)
    torch.set_float32_matmul_precision(precision)
    try:
        with torch.inference_mode():
            got = run_layers(model.layers, x.clone(), skip_connection=True)
    finally:
        torch.set_float32_matmul_precision("highest")
    # float32: rounding only; "high": bf16 operands where the CPU has them
    tol = 1e-5 if precision == "highest" else 3e-2
    assert (got - expected).abs().max() <= tol * expected.abs().max()


def test_rotary_in_bf16_halves_equals_the_float32_complex_rotation():
    # the default mode's path (bf16, each head's features as even then odd halves) runs on
    # any CPU here, AMX or not: it must be the float32 pair rotation up to bf16 rounding
    from runtime_entry.models.positions import RotaryEmbedding

    rotary = RotaryEmbedding(16)
    gen = torch.Generator().manual_seed(5)
    qk = torch.randn(3, 37, 2, 2, 16, generator=gen)
    expected = rotary.rotate_into(qk, torch.empty_like(qk))
    order = torch.cat([torch.arange(0, 16, 2), torch.arange(1, 16, 2)])
    halves = qk[..., order].to(torch.bfloat16)
    got = rotary.rotate_into(halves, torch.empty_like(halves), halves=True).float()
    back = torch.empty_like(got)
    back[..., order] = got
    assert (back - expected).abs().max() <= 1e-2 * expected.abs().max()


def test_bf16_linear_and_residual_add_equal_float32_up_to_rounding():
    # kernels.linear (fused bias + exact GELU where oneDNN has it) and add_linear_ into a
    # float32 residual, over more rows than one of its blocks
    from runtime_entry.models import kernels

    gen = torch.Generator().manual_seed(6)
    rows = kernels._ADD_ROWS + 77
    inp = torch.randn(rows, 24, generator=gen)
    w1, b1 = torch.randn(40, 24, generator=gen) / 5, torch.randn(40, generator=gen)
    w2, b2 = torch.randn(24, 40, generator=gen) / 6, torch.randn(24, generator=gen)
    bf = torch.bfloat16
    hidden = torch.nn.functional.gelu(inp @ w1.T + b1)
    got_hidden = kernels.linear(inp.to(bf), w1.to(bf), b1.to(bf), gelu=True)
    assert got_hidden.dtype == bf
    assert (got_hidden.float() - hidden).abs().max() <= 2e-2 * hidden.abs().max()
    residual = torch.randn(rows, 24, generator=gen)
    expected = residual + got_hidden.float() @ w2.to(bf).float().T + b2.to(bf).float()
    kernels.add_linear_(residual, got_hidden, w2.to(bf), b2.to(bf), kernels.Workspace())
    assert residual.dtype == torch.float32
    assert (residual - expected).abs().max() <= 1e-2 * expected.abs().max()


def test_flash_attn_false_uses_explicit_attention_with_the_same_result():
    base = PRESETS["tiny"]
    x = torch.randn(1, 2, base["audio"]["chunk_size"])
    outs = []
    for flash in (True, False):
        spec = spec_from_config(
            {**base, "model": {**base["model"], "flash_attn": flash}}, name="t", source="test"
        )
        with torch.inference_mode():
            outs.append(build_model(spec)(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def test_zero_dc_drops_the_dc_bin_before_the_inverse_stft():
    base = PRESETS["tiny"]
    only_dc = torch.zeros(1, 4, 129 * 2, 20, dtype=torch.complex64)
    only_dc[:, :, :2] = 1.0  # bin 0 of both channels (frequency-major, channel-minor)
    peaks = {}
    for zero_dc in (False, True):
        model = build_model(
            spec_from_config(
                {**base, "model": {**base["model"], "zero_dc": zero_dc}}, name="t", source="test"
            )
        )
        peaks[zero_dc] = model._istft(only_dc, None).abs().max().item()
    assert peaks[True] == 0.0 < peaks[False]


def test_mel_band_roformer_covers_every_frequency_and_separates():
    spec = resolve_spec("tiny_mel")
    model = build_model(spec)
    assert set(model.num_bands_per_freq.tolist()) - {0} and (model.num_bands_per_freq > 0).all()
    keys = set(model.state_dict())
    assert "final_norm.gamma" not in keys and "layers.0.0.norm.gamma" in keys
    assert "mask_estimators.1.to_freqs.7.0.2.weight" in keys  # depth 1 -> one hidden layer
    with torch.inference_mode():
        assert model(torch.randn(1, 2, spec.chunk_size)).shape == (1, 2, 2, spec.chunk_size)


MSST_YAML = textwrap.dedent(
    """\
    audio:
      chunk_size: 16384
      num_channels: 2
      sample_rate: 44100
      min_mean_abs: 0.0
    model:
      dim: 32
      depth: 1
      stereo: true
      num_stems: 1
      time_transformer_depth: 1
      freq_transformer_depth: 1
      linear_transformer_depth: 0
      freqs_per_bands: !!python/tuple
      - 1
      - 64
      - 64
      dim_head: 16
      heads: 2
      attn_dropout: 0.1
      ff_dropout: 0.1
      flash_attn: true
      dim_freqs_in: 129
      stft_n_fft: 256
      stft_hop_length: 64
      stft_win_length: 256
      stft_normalized: false
      mask_estimator_depth: 2
      multi_stft_resolution_loss_weight: 1.0
      multi_stft_resolutions_window_sizes: !!python/tuple
      - 4096
      - 2048
      multi_stft_hop_size: 147
      multi_stft_normalized: False
      mlp_expansion_factor: 1
    training:
      instruments: [vocals, other]
      target_instrument: vocals
      use_amp: true
    inference:
      batch_size: 1
      num_overlap: 4
    """
)


def test_msst_yaml_with_python_tuples_loads_as_data(tmp_path):
    path = tmp_path / "config_vocals_bs_roformer.yaml"
    path.write_text(MSST_YAML)
    spec = load_yaml(path)
    assert spec.kind == "bs_roformer"
    assert spec.params["freqs_per_bands"] == (1, 64, 64)
    assert spec.instruments == ("vocals",)
    assert spec.num_overlap == 4
    with torch.inference_mode():
        # msst's BS-RoFormer keeps the stem axis for one stem: (b, 1, s, t)
        assert build_model(spec)(torch.randn(1, 2, 16384)).shape == (1, 1, 2, 16384)


def test_unknown_model_key_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(MSST_YAML.replace("mask_estimator_depth: 2", "mask_estimater_depth: 2"))
    with pytest.raises(
        ModelConfigError,
        match=re.escape("'mask_estimater_depth'") + ".*Perhaps you meant 'mask_estimator_depth'",
    ):
        load_yaml(path)


def test_yaml_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text(MSST_YAML + "evil: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ModelConfigError, match="Failed to parse"):
        load_yaml(path)


def test_bands_that_do_not_cover_the_spectrum_are_rejected(tmp_path):
    path = tmp_path / "bands.yaml"
    path.write_text(MSST_YAML.replace("  - 1\n  - 64", "  - 2\n  - 64"))
    with pytest.raises(ModelConfigError, match="summing to 129"):
        load_yaml(path)


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ModelConfigError, match="Perhaps you meant 'bs_roformer_4stem'"):
        resolve_spec("bs_roformer_4stems")
