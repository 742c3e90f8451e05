"""Conversations answered turn by turn: the question completed by the earlier ones for retrieval,
the history the model reads, and each turn stored once its answer is complete."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from assistants.answer import Answer, AnswerStream
from assistants.chat import ChatService
from assistants.conversations import ConversationStore
from assistants.schema import Assistant
from retriever.keyword import content_words
from runtime.protocol import Message

_ANAPHORA = frozenset(
    [
        "it",
        "its",
        "it's",
        "this",
        "that",
        "these",
        "those",
        "they",
        "them",
        "their",
        "there",
        "he",
        "she",
        "his",
        "her",
        "such",
        "same",
        "one",
        "ones",
    ]
)


def retrieval_query(question: str, previous_questions: Sequence[str]) -> str:
    """The search query for a turn: the question, plus the previous question when this one leans
    on it ("and what about its default?") or is too short to search on its own."""
    if not previous_questions:
        return question
    words = re.findall(r"[\w']+", question.lower())
    if _ANAPHORA.intersection(words) or len(content_words(question)) <= 1:
        return f"{previous_questions[-1]} {question}"
    return question


class ConversationService:
    """Multi-turn chat: history from the store, follow-up aware retrieval, every turn stored."""

    def __init__(self, chat: ChatService, conversations: ConversationStore) -> None:
        self.chat, self.conversations = chat, conversations

    def history(self, conversation_id: int) -> tuple[list[Message], list[str]]:
        """Earlier turns as the model saw them, and the user's earlier questions."""
        past: list[Message] = []
        questions: list[str] = []
        for m in self.conversations.messages(conversation_id):
            if m.role == "user":
                past.append({"role": "user", "content": m.prompt_text or m.text})
                questions.append(m.text)
            else:
                past.append({"role": "assistant", "content": m.text})
        return past, questions

    def ask(self, assistant: Assistant, conversation_id: int, question: str, **overrides: Any) -> AnswerStream:
        """Answer the next question of a conversation; the turn is stored once the answer is complete.
        `overrides` (answer_mode, grounding, sampling) apply to this turn only."""
        past, questions = self.history(conversation_id)
        stream = self.chat.ask(assistant, question, past, query=retrieval_query(question, questions), **overrides)
        settings = assistant.model_dump(
            mode="json", include={"model", "retrieval", "citation_style", "answer_mode", "grounding"}
        )

        def store(answer: Answer) -> None:
            s = answer.stats
            user = {"text": question, "prompt_text": answer.user_content or question}
            reply = {
                "text": answer.text,
                "citations_json": json.dumps([c.to_json() for c in answer.citations]),
                "prompt_tokens": s.prompt_tokens,
                "evaluated_tokens": s.evaluated_tokens,
                "completion_tokens": s.completion_tokens,
                "time_to_first_token": s.time_to_first_token,
                "total_time": s.total_time + answer.retrieval_time,
                "settings_json": json.dumps(settings),
                "details_json": json.dumps(answer.details_json(context=True)),
            }
            _, answer.message_id = self.conversations.add_turn(conversation_id, user, reply)

        return stream.then(store)
