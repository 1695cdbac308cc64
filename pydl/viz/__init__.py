"""pydl.viz: understanding what a network learnt (lectures 8-9 and the cheat sheet).

- :mod:`~pydl.viz.attribution`: activation maps, saliency maps, guided backprop, occlusion
  sensitivity, CAM and Grad-CAM;
- :mod:`~pydl.viz.synthesis`: class visualisation by gradient ascent, feature inversion;
- :mod:`~pydl.viz.adversarial`: FGSM, iterative FGSM, robustness to random noise;
- :mod:`~pydl.viz.embedding`: nearest neighbours in feature space, PCA, t-SNE;
- :mod:`~pydl.viz.plots`: image and filter grids (PNG written without matplotlib), scatter
  plots and heat-map overlays (matplotlib, the ``viz`` extra).
"""
from .adversarial import accuracy, fgsm, iterative_fgsm, noise_robustness
from .attribution import activation_maps, cam, grad_cam, guided_backprop, occlusion, saliency
from .embedding import nearest_neighbors, pca, tsne
from .plots import filter_grid, image_grid, save_png, scatter_plot, show_heatmaps
from .synthesis import class_visualization, feature_inversion, gaussian_blur

__all__ = ["accuracy", "activation_maps", "cam", "class_visualization", "feature_inversion", "fgsm", "filter_grid",
           "gaussian_blur", "grad_cam", "guided_backprop", "image_grid", "iterative_fgsm", "nearest_neighbors",
           "noise_robustness", "occlusion", "pca", "saliency", "save_png", "scatter_plot", "show_heatmaps", "tsne"]
