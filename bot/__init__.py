"""kindbot: a chatbot for compassionate reframing of self-critical thoughts."""

__version__ = "0.1.0"
