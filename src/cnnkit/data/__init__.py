"""From files to arrays: discover class folders, decode images, split them, and the built-in datasets."""
