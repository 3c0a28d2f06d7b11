"""Representative train.py command lines and how their training_loop kwargs are computed, shared by the test
that compares them with the kwargs recorded before train.py was split (train_kwargs.json) and by the script
that recorded them: python -m tests.stylegan_som.config.kwargs_cases > tests/stylegan_som/config/train_kwargs.json"""

import json
import os
import sys
import tempfile

# {data}: a 16x16 folder with 2 classes; {digits}: a 28x28 folder; {outdir}: a fresh folder.
CASES = {
    'tiny-cond': ['--data={data}', '--cfg=tiny', '--cond=1', '--kimg=1', '--tick=1', '--snap=1', '--workers=1', '--metrics=none'],
    'auto': ['--data={data}', '--gamma=1', '--batch=8', '--mirror=1', '--aug=fixed', '--p=0.2', '--seed=3', '--metrics=none'],
    'auto-ada': ['--data={data}', '--target=0.7', '--augpipe=bg', '--subset=10', '--metrics=none', '--freezed=1'],
    'toy-som': ['--data=ring8', '--cfg=toy', '--som-d=4'],
    'toy-pack': ['--data=grid25', '--cfg=toy', '--d-pack=4', '--loss=wgan', '--kimg=10'],
    'dcgan-plugins': ['--data={data}', '--cfg=tiny', '--arch=dcgan', '--d-width=0.5', '--d-pack=2', '--d-attn=8',
        '--som-d=3', '--som-topo=linear', '--loss=hinge', '--metrics=none'],
    'resnet-mixed': ['--data={data}', '--cfg=cpu', '--arch=resnet', '--g-arch=dcgan', '--loss=rpgan',
        '--d-head=projection', '--cond=1', '--som-share=none', '--som-d=2', '--som-topo=linear'],
    'stylegan2-all': ['--data={data}', '--cfg=tiny', '--g-attn=8', '--d-attn=8,4', '--d-sn=1', '--loss=wgan-gp',
        '--cbase=1024', '--cmax=64', '--map=2', '--glr=0.001', '--dlr=0.002', '--mbstd-group=2', '--lr-rampdown=0.1',
        '--fm=0.5', '--r2-gamma=0.1', '--d-reg-interval=4', '--fp32=1', '--workers=1', '--metrics=none',
        '--nhwc=1', '--nobench=1', '--allow-tf32=1'],
    'cifar-mlphead': ['--data={data}', '--cfg=cifar', '--cond=1', '--d-head=mlp', '--som-d=4', '--som-g-weights=balance',
        '--som-bmu=prototype', '--som-normalize=0', '--som-sigma-start=2', '--som-sigma-end=0.5', '--metrics=none'],
    'cmap': ['--data={data}', '--cfg=paper256', '--cond=1', '--d-head=cmap', '--metrics=none', '--batch=16'],
    'stacked': ['--data={digits}', '--cfg=stacked-mnist', '--bf16=0', '--som-d=4', '--d-bn=0', '--d-sn=1'],
    'mlp-lin': ['--data=ring8', '--cfg=toy', '--d-head=linear', '--loss=softmax', '--gamma=0.1', '--resume=noresume'],
}

def make_data(root):
    from tests.test_train import make_image_folder
    return dict(data=make_image_folder(os.path.join(root, 'shapes'), labels=2),
        digits=make_image_folder(os.path.join(root, 'digits'), res=28), outdir=os.path.join(root, 'runs'))

def kwargs_for(argv, paths):
    """(run description, training_loop kwargs as plain JSON data) of a train.py command line, parsed by train.main."""
    import train
    argv = [arg.format(**paths) for arg in argv] + [f'--outdir={paths["outdir"]}']
    ctx = train.main.make_context('train.py', argv)
    params = dict(ctx.params)
    for key in ('dry_run', 'trust_pickle', 'verbose'):
        params.pop(key, None)
    desc, args = train.setup_training_loop_kwargs(device_type='cpu', **params)
    text = json.dumps(dict(desc=desc, args=args))
    for name, path in paths.items():
        text = text.replace(path, '{' + name + '}')
    return json.loads(text)

if __name__ == '__main__':
    os.environ['CUDA_VISIBLE_DEVICES'] = ''
    with tempfile.TemporaryDirectory() as root:
        paths = make_data(root)
        out = {name: kwargs_for(argv, paths) for name, argv in CASES.items()}
    json.dump(out, sys.stdout, indent=1)
