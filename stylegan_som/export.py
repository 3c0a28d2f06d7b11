"""Export a network pickle as a safetensors weights file (stylegan_som.weights), for sharing networks without
sharing code: loading it runs nothing from the file.

    python -m stylegan_som.export --network=network-snapshot-000200.pkl --out=network-snapshot-000200.safetensors

The training state of a snapshot (optimizer states, counters, RNG), where it has one, goes to
x.state.safetensors beside the output, so that `train.py --resume=x.safetensors` continues the run exactly;
--no-state leaves it out (enough for generate.py and calc_metrics.py)."""

import os

import click

import dnnlib

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.pass_context
@click.option('--network', 'network_pkl', help='Network pickle to read (path or URL)', metavar='PKL', required=True)
@click.option('--out', 'out_path', help='Weights file to write (.safetensors)', metavar='FILE', required=True)
@click.option('--state/--no-state', help='Also write the training state, if any, as <out>.state.safetensors [default: on]', default=True)
@click.option('--trust-pickle', help='Load the pickle even where it would run code this installation does not know (only for files you trust) [env: SGSOM_TRUST_PICKLES=1]', is_flag=True)
def main(ctx, network_pkl, out_path, state, trust_pickle):
    """Write the networks of a pickle (this project's, StyleGAN2-ADA's or SOMGAN's) as a safetensors file that
    generate.py, calc_metrics.py, train.py --resume and stylegan_som.attach load like the pickle."""
    from . import legacy, snapshot, weights # pylint: disable=import-outside-toplevel
    if not out_path.endswith(weights.SUFFIX) or out_path.endswith(weights.STATE_SUFFIX):
        ctx.fail(f'--out must end in {weights.SUFFIX} (and not in {weights.STATE_SUFFIX}): {out_path}')
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        ctx.fail(f'--out: no such directory: {out_dir}')
    try:
        with dnnlib.util.open_url(network_pkl) as f:
            data = legacy.load_network_pkl(f, trust=(trust_pickle or None))
    except (IOError, OSError, ValueError) as err:
        ctx.fail(f'--network: {err}')
    if not state:
        data.pop(snapshot.STATE_KEY, None)
    try:
        weights.save(data, out_path)
    except snapshot.SnapshotWriteError as err:
        raise click.ClickException(f'--out: {err}')
    except weights.WeightsError as err:
        ctx.fail(f'--network: {err}')
    written = [out_path] + ([weights.state_path(out_path)] if data.get(snapshot.STATE_KEY) is not None else [])
    print(f'Wrote {" and ".join(written)}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
