import sys

from .emit import main

sys.exit(main())
