"""Stand-in for the pip bootstrap script that ansible-test downloads for its per-test virtualenvs.

ansible-test fetches that script from a host outside the package registries, which our machines
cannot reach. This one does the same job with what every CPython ships: pip from the interpreter's
bundled wheel (ensurepip), then `pip install` of the packages ansible-test asked for, from the
package index pip is configured for. harness/sanity puts it where ansible-test looks for its cache.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# In a child process: ensurepip sets PIP_CONFIG_FILE=/dev/null in its own environment, which
# would hide the machine's pip configuration (its CA bundle) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
