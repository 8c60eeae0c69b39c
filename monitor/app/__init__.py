"""The top floor: CLI, daemon wiring (the one list of plug-ins), once, demo."""
