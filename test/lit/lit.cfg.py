# lit configuration for gemmac's FileCheck regression tests.
import os
import lit.formats

config.name = "gemmac"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.gemmac_obj_root, "test", "lit")

config.environment["PATH"] = os.pathsep.join(
    [config.gemmac_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%srcroot", config.gemmac_src_root))
