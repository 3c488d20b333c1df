# NVRTC-compiles kernels.cu files as runtime/cuda does (sm_90) and counts each
# decode kernel's global and shared loads and stores by width, from the SASS.
# On the GPU machine: /opt/torch/.venv/bin/python3 .gpu/sass.py A.cu [B.cu]; the
# files come from MINERVA_CUDA_SOURCE=FILE gpu.test -test.run TestCUDASourceFile.
import ctypes, subprocess, sys, re, collections
nv = ctypes.CDLL("/usr/local/cuda/lib64/libnvrtc.so")
def compile(path):
    src = open(path, "rb").read()
    prog = ctypes.c_void_p()
    assert nv.nvrtcCreateProgram(ctypes.byref(prog), src, b"kernels.cu", 0, None, None) == 0
    opts = [b"--gpu-architecture=sm_90", b"--std=c++17", b"-default-device", b"-lineinfo"]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    r = nv.nvrtcCompileProgram(prog, len(opts), arr)
    n = ctypes.c_size_t()
    nv.nvrtcGetProgramLogSize(prog, ctypes.byref(n)); log = ctypes.create_string_buffer(n.value); nv.nvrtcGetProgramLog(prog, log)
    if r != 0:
        print(path, "compile failed:", log.value.decode()[:3000]); return None
    nv.nvrtcGetCUBINSize(prog, ctypes.byref(n)); buf = ctypes.create_string_buffer(n.value); nv.nvrtcGetCUBIN(prog, buf)
    out = path + ".cubin"; open(out, "wb").write(buf.raw); return out
for path in sys.argv[1:]:
    cub = compile(path)
    if not cub: continue
    sass = subprocess.run(["/usr/local/cuda/bin/cuobjdump", "-sass", cub], capture_output=True, text=True).stdout
    fn = None; counts = collections.OrderedDict()
    for line in sass.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m: fn = m.group(1); counts[fn] = collections.Counter(); continue
        m = re.search(r"\b(LDG|LDS|STG|LDL|STL)(\.[A-Z0-9.]+)?", line)
        if m and fn: counts[fn][m.group(0)] += 1
    print("==", path)
    for f, c in counts.items():
        if re.search(r"moe_|attend_decode|qkv_rope|linear_decode|add_rmsnorm_router|attend_any", f):
            print(f[:60], dict(sorted(c.items())))
