"""The LangChain <-> Vercel mapping (`codec.langchain`), pure: real LangChain chunk streams in, chunks and
UIMessages out, and back."""
