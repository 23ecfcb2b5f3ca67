import sys

from fgood_bench.cli import main

sys.exit(main())
