"""Looking inside a trained network: its first filters, its stages' activations for one image, and where it looked
(Grad-CAM, occlusion, integrated gradients from Captum), as figures and a page (``cnnkit inspect``)."""
