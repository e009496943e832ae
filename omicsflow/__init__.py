"""omicsflow: a genomics lab's pipelines on Prefect 3, nothing lost, nothing duplicated."""

__version__ = "0.1.0"
