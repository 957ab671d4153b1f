from runtime_entry.main import main

raise SystemExit(main())
