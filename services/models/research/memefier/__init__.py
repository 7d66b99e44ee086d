"""MemeFier (source document 3.1): CLIP image patches and text tokens, dual-stage fusion (element-wise
product with the other modality's global embedding, then a Transformer encoder with a CLS token), optional
demographic tokens and caption supervision; L = L_task + α·L_caption."""
