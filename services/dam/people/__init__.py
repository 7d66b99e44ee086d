"""People: the faces the annotation stream finds, stored per asset, clustered into persons that users name,
merge, split and correct; persons filter search and form the recognition gallery."""
