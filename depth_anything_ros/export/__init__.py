"""Build-time model code: the network definition, checkpoint loading and export.

Needs the ``export`` extra (torch, onnx, nncf); the runtime node never imports it.
"""
