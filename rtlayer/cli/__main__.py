import sys

from rtlayer.cli import main

sys.exit(main())
