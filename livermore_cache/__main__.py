"""``python -m livermore_cache``: the ``livermore-cache`` command line (see ``livermore_cache.cli``)."""

from livermore_cache.cli import main

if __name__ == "__main__":
    main()
