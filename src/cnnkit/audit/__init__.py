"""``cnnkit audit``: what in a data set can make a score meaningless: duplicates within and across splits and
classes, suspected label errors, metadata that gives the class away, unreadable and empty images."""
