"""TinyTorch Katas tooling: the curriculum, stub generation, the grader and the `kata` CLI."""
