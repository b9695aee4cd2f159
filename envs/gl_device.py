"""Which GPU MuJoCo renders on, for processes that are given one GPU (Ray actors on GPU nodes).

MuJoCo's EGL backend picks its device by `MUJOCO_EGL_DEVICE_ID`, an index into the EGL device list
(`eglQueryDevicesEXT`). That list is not CUDA's: it holds every GPU of the machine whatever
`CUDA_VISIBLE_DEVICES` says, in the driver's order, and may hold non-NVIDIA devices too (Mesa's software
device). So the index Ray assigns (a CUDA device id) is not the EGL index. The EGL device of a CUDA
device is the one whose `EGL_CUDA_DEVICE_NV` attribute (extension EGL_NV_device_cuda) equals it;
`egl_device_for_cuda` looks it up, and `gl_renderer` says which renderer a fresh context got, so the
choice can be checked (`GL_RENDERER`).

Untested on a GPU: the machine this was written on has none (docs/ray.md). Both functions must run
before the process's first MuJoCo GL context: MuJoCo opens its EGL display once per process.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

EGL_CUDA_DEVICE_NV = 0x323A  # EGL_NV_device_cuda: the CUDA device ordinal of an EGL device
EGL_DEVICE_ID_VARIABLE = "MUJOCO_EGL_DEVICE_ID"


def egl_device_for_cuda(cuda_id: int) -> int | None:
    """Index, in MuJoCo's EGL device list, of the GPU that CUDA numbers `cuda_id` (physical numbering, as
    Ray's `get_gpu_ids()`); None when the driver does not answer `EGL_CUDA_DEVICE_NV` for any device."""
    from mujoco.egl import egl_ext as EGL  # needs PYOPENGL_PLATFORM=egl, which MUJOCO_GL=egl sets

    address = EGL.eglGetProcAddress("eglQueryDeviceAttribEXT")
    if not address:
        return None
    query = ctypes.CFUNCTYPE(EGL.EGLBoolean, EGL.EGLDeviceEXT, EGL.EGLint, ctypes.POINTER(ctypes.c_ssize_t))(address)
    for index, device in enumerate(EGL.eglQueryDevicesEXT()):
        value = ctypes.c_ssize_t(-1)
        if query(device, EGL_CUDA_DEVICE_NV, ctypes.byref(value)) == EGL.EGL_TRUE and value.value == cuda_id:
            return index
    return None


def select_egl_device(cuda_id: int) -> int:
    """Set `MUJOCO_EGL_DEVICE_ID` to the EGL device of CUDA device `cuda_id` and return it. Falls back to
    `cuda_id` itself (with a warning) where the driver cannot say which EGL device that is."""
    device = egl_device_for_cuda(cuda_id)
    if device is None:
        log.warning("the EGL driver does not map EGL devices to CUDA devices (EGL_NV_device_cuda); rendering on "
                    "EGL device %d, which may not be the GPU assigned to this process", cuda_id)
        device = cuda_id
    os.environ[EGL_DEVICE_ID_VARIABLE] = str(device)
    return device


def gl_renderer() -> str:
    """`GL_RENDERER` of a fresh MuJoCo GL context of this process's backend (`MUJOCO_GL`), e.g.
    "NVIDIA H100 80GB HBM3/PCIe/SSE2" on a GPU, "llvmpipe (LLVM 15.0.6, 256 bits)" with OSMesa."""
    import mujoco
    from OpenGL import GL

    context = mujoco.GLContext(16, 16)
    try:
        context.make_current()
        name = GL.glGetString(GL.GL_RENDERER)
    finally:
        context.free()
    return name.decode() if isinstance(name, bytes) else str(name)


def check_gpu_renderer(renderer: str, cuda_id: int) -> None:
    """Raise RuntimeError when a process given GPU `cuda_id` renders in software (the EGL device is not a GPU)."""
    if "nvidia" not in renderer.lower():
        raise RuntimeError(f"this process was given GPU {cuda_id} but MuJoCo renders with {renderer!r} "
                           f"({EGL_DEVICE_ID_VARIABLE}={os.environ.get(EGL_DEVICE_ID_VARIABLE)}): the EGL device "
                           "is not an NVIDIA GPU")
