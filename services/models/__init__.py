"""Model provisioning for the repository (`maam models …`): the models that ship inside packages,
pretrained models exported to ONNX, bring-your-own ONNX, INT8 quantization and benchmarks."""
