"""Runs the stage notebooks: the whole chain locally (``run``) or one execution (``stage``, what a
workflow step calls). Both go through :func:`execute.execute`, so local and workflow runs share one path."""
