"""`python -m langchain_ably_transport.devserver`: run the dev server in the foreground."""

from langchain_ably_transport.devserver.cli import main

if __name__ == "__main__":
    main()
