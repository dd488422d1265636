"""The travel-booking agent in LangChain, CrewAI and AutoGen, on the embedded AMP sandbox."""
