"""Image-text alignment models (BioViL-T via hi-ml-multimodal), loaded from local weights only."""
