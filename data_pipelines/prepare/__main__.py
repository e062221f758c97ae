"""`python -m data_pipelines.prepare --images DIR --out DIR [--size 512]`: see prepare.py."""
from data_pipelines.prepare import prepare

if __name__ == '__main__':
  prepare.main()
