"""Scatter plots and BMU-occupancy heat maps (stylegan_som/pictures.py), read back pixel by pixel."""

import numpy as np
import PIL.Image
import pytest

from stylegan_som import pictures

def test_scatter_places_points_and_centres():
    centres = np.array([[-1.0, -1.0], [1.0, 1.0]])
    extent = pictures.scatter_extent(centres, margin=0.0) # exactly [-1, 1]^2
    np.testing.assert_allclose(extent[0], [-1, -1])
    np.testing.assert_allclose(extent[1], [1, 1])
    img = pictures.draw_scatter(np.array([[1.0, 1.0], [-1.0, 0.0], [50.0, -50.0]]), extent=extent, size=101)
    blue = np.all(img == pictures._SAMPLE_RGB, axis=2)
    # (1, 1) is the top-right corner (y points up); (-1, 0) the middle of the left edge; (50, -50) is pinned
    # to the bottom-right corner.
    assert blue[0:2, 99:101].all() and blue[50:52, 0:2].all() and blue[99:101, 99:101].all()
    assert blue.sum() == 12
    img = pictures.draw_scatter(np.zeros([0, 2]), centres=centres, extent=extent, size=101)
    red = np.all(img == pictures._CENTRE_RGB, axis=2)
    assert red[:, :50].any() and red[:, 50:].any() # a ring around each centre
    assert not red[50, 50] # nothing in the middle

def test_scatter_reference_below_samples(tmp_path):
    fname = str(tmp_path / 'scatter.png')
    pictures.save_scatter(np.array([[0.0, 0.0]]), fname, reference=np.array([[0.0, 0.0], [0.5, 0.5]]),
        extent=(np.array([-1.0, -1.0]), np.array([1.0, 1.0])), size=64)
    img = np.asarray(PIL.Image.open(fname))
    assert img.shape == (64, 64, 3)
    assert (np.all(img == pictures._SAMPLE_RGB, axis=2)).sum() == 4 # drawn over the grey reference point
    assert (np.all(img == pictures._REAL_RGB, axis=2)).sum() == 4

def test_occupancy_from_stats_and_layout():
    class Value:
        def __init__(self, mean):
            self.mean = mean
    stats = {'SOM/occupancy/0': Value(0.5), 'SOM/occupancy/2': Value(0.25), 'SOM/sigma': Value(1.0), 'Loss/x': 3}
    occ = pictures.occupancy_from_stats(stats)
    assert occ[0] == 0.5 and np.isnan(occ[1]) and occ[2] == 0.25
    assert pictures.occupancy_from_stats({'Loss/x': 1}) is None
    assert pictures.occupancy_layout(9, 'grid') == (3, 3)
    assert pictures.occupancy_layout(9, 'linear') == (1, 9)
    assert pictures.occupancy_layout(6, 'grid') == (1, 6)

def test_occupancy_heat_map(tmp_path):
    img = pictures.draw_occupancy([0.0, 0.5, 0.25, 0.25], topology='grid', cell=20)
    assert img.shape == (40, 40, 3)
    assert tuple(img[2, 2]) == (255, 255, 255) # head 0 wins nothing: white
    assert tuple(img[2, 22]) == (150, 0, 0)    # head 1, top right: the largest share, darkest
    g = img[22, 2] # head 2, bottom left: half of the largest share
    assert g[1] == g[2] and 0 < g[1] < 255
    fname = str(tmp_path / 'occ.png')
    assert not pictures.save_occupancy_from_stats({'SOM/occupancy/0': 1.0}, fname) # one head: no map
    assert pictures.save_occupancy_from_stats({f'SOM/occupancy/{k}': 0.25 for k in range(4)}, fname)
    assert PIL.Image.open(fname).size == (96, 96)
