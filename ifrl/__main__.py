import sys

from ifrl.cli import main

sys.exit(main())
