"""The travel-booking agent in LangChain, CrewAI, AutoGen and Agent Framework, on the embedded AMP sandbox."""
