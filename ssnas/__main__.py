"""`python -m ssnas`: the method end to end on the embedded synthetic dataset (`ssnas demo`)."""

from ssnas.commands.demo import demo

if __name__ == "__main__":
    demo(prog_name="python -m ssnas")
