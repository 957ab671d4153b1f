"""A new project folder for `builder init`: profiles for one target, locks/, a .gitignore."""
