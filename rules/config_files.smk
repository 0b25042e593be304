# Checks of the config files themselves, before Snakemake reads them (included before `configfile:`).

import importlib.util


def _check_config_files():
    """Each config file parses, with no key given twice, before Snakemake reads it: an error names the file
    and the line (kernels/configfile.py, loaded from its file: importing kernels would load torch).
    """
    path = os.path.join(workflow.basedir, "kernels", "configfile.py")
    spec = importlib.util.spec_from_file_location("_workflow_configfile", path)
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    own = os.path.join(workflow.basedir, "config", "config.yaml")
    for config_file in [own, *workflow.overwrite_configfiles]:
        checker.check_config_file(config_file)


_check_config_files()
