"""Checks shared by the command-line bad-input tests (train.py, generate.py, calc_metrics.py)."""


def one_error_line(output, mentions=(), **names):
    """The one 'Error:' line in a command's output. Fails unless there is exactly one, there is no traceback,
    and the line contains every string in `mentions` (formatted with `names`, e.g. '{root}/x.pkl')."""
    errors = [line for line in output.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and 'Traceback' not in output, output[-3000:]
    for part in mentions:
        assert part.format(**names) in errors[0], (part.format(**names), errors[0])
    return errors[0]
