"""Network backbones. Each module is self-contained: persistent classes whose source travels in pickles."""
