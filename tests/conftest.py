import sys
from pathlib import Path

# Import the checkout's tapegrad even when run without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
