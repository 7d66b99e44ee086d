"""ALBEF's unimodal encoders (source document 4.1.1): a ViT-B/16 image encoder and the first 6 layers of BERT
as text encoder, each projected to a 256-d space, aligned by the image-text contrastive (ITC) loss."""
