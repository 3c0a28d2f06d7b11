"""`python -m stylegan_som.dataset_tool`, the command upstream users know; the tool is stylegan_som.data.tool."""

from .data.tool import convert_dataset

if __name__ == '__main__':
    convert_dataset() # pylint: disable=no-value-for-parameter
