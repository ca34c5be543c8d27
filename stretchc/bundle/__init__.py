"""The bundle: manifest model, writer, reader and validation."""
