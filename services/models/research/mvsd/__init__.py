"""MV-SD (source document 3.3): a T2T-ViT encoder, a divided space-time attention temporal module and an
RT2T decoder with a saliency token, trained on DHF1K with KL + 0.5·CC + 0.5·SIM."""
