"""amp-tools examples (installed as `amp_examples`): demo agents, scripted offline models, policies."""
