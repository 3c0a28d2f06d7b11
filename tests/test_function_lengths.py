"""Function lengths, read with ast: no function in the packages or the top-level CLIs is longer than 120 lines,
except training_loop, which may take 350. A function's length runs from its def line to the last line of its body
(decorators not counted, nested functions counted within their parent and on their own)."""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('stylegan_som', 'torch_utils', 'dnnlib', 'metrics')
LIMIT = 120
LIMITS = {'stylegan_som/training_loop.py:training_loop': 350}

def _sources():
    paths = [os.path.join(REPO, f) for f in sorted(os.listdir(REPO)) if f.endswith('.py')] # the CLIs
    for package in PACKAGES:
        for root, dirs, files in os.walk(os.path.join(REPO, package)):
            dirs.sort()
            paths += [os.path.join(root, f) for f in sorted(files) if f.endswith('.py')]
    return paths

def function_lengths(source, filename='<string>'):
    """[(name, first line, length)] of every function and method in `source`."""
    tree = ast.parse(source, filename=filename)
    return [(node.name, node.lineno, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]

def test_function_lengths():
    too_long = []
    count = 0
    for path in _sources():
        rel = os.path.relpath(path, REPO).replace(os.sep, '/')
        with open(path, encoding='utf-8') as f:
            lengths = function_lengths(f.read(), filename=path)
        count += len(lengths)
        for name, line, length in lengths:
            limit = LIMITS.get(f'{rel}:{name}', LIMIT)
            if length > limit:
                too_long.append(f'{rel}:{line} {name}: {length} lines (limit {limit})')
    assert count > 500 # the walk found the code
    assert not too_long, 'too long:\n' + '\n'.join(too_long)

def test_training_loop_is_measured():
    with open(os.path.join(REPO, 'stylegan_som', 'training_loop.py'), encoding='utf-8') as f:
        lengths = {name: length for name, _line, length in function_lengths(f.read())}
    assert 100 < lengths['training_loop'] <= 350

def test_function_lengths_counts_def_to_last_line():
    source = ('@decorator\n'
              'def f(a,\n'
              '      b):\n'
              '    def g():\n'
              '        return 1\n'
              '\n'
              '    return g\n'
              'class C:\n'
              '    async def m(self):\n'
              '        pass\n')
    assert sorted(function_lengths(source)) == [('f', 2, 6), ('g', 4, 2), ('m', 9, 2)]
