"""Camera geometry and depth images as numpy arrays: intrinsics, calibration, rays, colour."""
