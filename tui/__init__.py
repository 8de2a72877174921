"""The `ssnas tui` dashboard: a Textual app that reads the run registry and draws runs as they train.

Nothing here imports torch; the dashboard must start in a fraction of a second over SSH.
"""
