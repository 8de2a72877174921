"""The dashboard's screens: the runs table, one run, compare, launch, and small dialogs.

Import the modules themselves (tui.screens.runs, ...): nothing is re-exported, so importing one
screen does not load the others' widgets.
"""
