"""`python -m dianjin.data.synthetic OUT_DIR [--n-cflue N] [--n-finqa N] [--n-ccc N] [--seed S]`."""

from dianjin.data.synthetic.demo_files import main

main()
