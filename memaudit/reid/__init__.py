"""Patient re-identification: a verification network, its training and its weights folder."""
