"""The core of Task Queue Engine: standard library only."""
