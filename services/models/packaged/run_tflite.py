"""Runs a TFLite model with TensorFlow's own interpreter (inside the conversion venv, not the project's).
usage: python run_tflite.py MODEL.tflite IN.npz OUT.npz   (inputs by tensor name, outputs by tensor name)"""

import sys

import numpy as np
import tensorflow as tf


def main(model: str, inputs: str, outputs: str) -> None:
    interpreter = tf.lite.Interpreter(model_path=model)
    feeds = dict(np.load(inputs))
    for detail in interpreter.get_input_details():
        interpreter.resize_tensor_input(detail["index"], feeds[detail["name"]].shape)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], feeds[detail["name"]].astype(detail["dtype"]))
    interpreter.invoke()
    np.savez(outputs, **{d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()})


if __name__ == "__main__":
    main(*sys.argv[1:4])
