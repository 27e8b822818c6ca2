"""The workflow backends: the same stage notebooks as the local driver, run as the steps of a Yadage
workflow (the specs in the repository's ``workflow/``), locally or on REANA, in the project's image.

- :mod:`.yadage`: ``drivers/yadage``, the workflow run here (on this machine's environment or in containers);
- :mod:`.packtivity_local`: the packtivity executor plugin that runs a step in ``.venv`` instead of a container;
- :mod:`.image`: ``drivers/build-image``, the step image (its name, build and checks);
- :mod:`.reana`: ``drivers/reana``, the submission to a REANA cluster.

Every step calls ``python -m madminer_notebooks.driver stage`` (:mod:`madminer_notebooks.driver.runner`),
so a step does exactly what the local driver does for that stage. The plugin is loaded by yadage's own
environment, so this package imports nothing at import time.
"""
