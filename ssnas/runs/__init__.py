"""The run service: every action on runs and every lookup, for the CLI and the dashboard alike.

Torch-free and click-free. Front ends (ssnas/commands, tui/) parse, call one of these modules and
render; none of them re-implements an action or a rule (DESIGN.md section 9).
"""
