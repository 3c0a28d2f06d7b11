"""Pickles that run code when a plain pickle.load reads them, for the tests that every loader refuses them.
Each leaves a marker file when its code runs, so a test can tell that it did not."""

import os
import pickle
import shlex
import textwrap

from torch_utils import persistence

#----------------------------------------------------------------------------

class MarkerWriter:
    """Unpickling it with plain pickle creates `path`: through os.system (a shell command) or open()."""
    def __init__(self, path, how='system'):
        self.path, self.how = str(path), how

    def __reduce__(self):
        if self.how == 'system':
            return (os.system, (f'touch {shlex.quote(self.path)}',))
        return (open, (self.path, 'w'))

class EmbeddedSource:
    """Pickles as a persistent object whose embedded module source writes `path` when executed, and then defines
    a network class: the format runs embedded sources on load."""
    def __init__(self, path, class_name='Generator'):
        src = textwrap.dedent(f'''
            import torch
            from torch_utils import persistence
            open({str(path)!r}, 'w').close()

            @persistence.persistent_class
            class {class_name}(torch.nn.Module):
                pass
        ''')
        self.meta = dict(type='class', version=6, module_src=src, class_name=class_name, state={})

    def __reduce__(self):
        return (persistence._reconstruct_persistent_obj, (self.meta,)) # pylint: disable=protected-access

def write_network_pickles(folder, marker):
    """{'reduce': path, 'source': path}: network-pickle-shaped dicts with a MarkerWriter (os.system) as G, or
    EmbeddedSource objects as G, D and G_ema. Both write `marker` if anything runs them."""
    paths = dict(reduce=os.path.join(folder, 'reduce.pkl'), source=os.path.join(folder, 'source.pkl'))
    evil = MarkerWriter(marker)
    with open(paths['reduce'], 'wb') as f:
        pickle.dump(dict(G=evil, D=None, G_ema=evil, augment_pipe=None, training_set_kwargs=None), f)
    with open(paths['source'], 'wb') as f:
        pickle.dump(dict(G=EmbeddedSource(marker), D=EmbeddedSource(marker, 'Discriminator'), G_ema=EmbeddedSource(marker),
            augment_pipe=None, training_set_kwargs=None), f)
    return paths

def write_unknown_source_network(path, marker, **G_kwargs):
    """A working network pickle (our StyleGAN2 G, with D=None) whose embedded source is ours plus one line that
    writes `marker`: not byte-identical to the installed module, so refused by default; with --trust-pickle it
    loads, writes the marker and draws. Building it runs that source here, so the marker is removed afterwards."""
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    src = persistence._module_to_src(stylegan2) + f'\nopen({str(marker)!r}, "w").close()\n' # pylint: disable=protected-access
    module = persistence._src_to_module(src) # pylint: disable=protected-access
    G = module.Generator(**G_kwargs).eval().requires_grad_(False)
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    os.remove(marker)
    return G

#----------------------------------------------------------------------------
